"""The minimal (L4) waypoint: terminates HBONE as the Gateway's identity and forwards each tunnel
to an endpoint of the service or pod it serves, over a new HBONE connection of its own."""
