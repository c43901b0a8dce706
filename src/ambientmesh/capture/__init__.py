"""In-pod traffic capture: nftables rules, original destination, netns sockets, the ZDS hand-off."""
