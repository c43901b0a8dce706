"""Fakes shared by every test tier; nothing under ambientmesh imports this package."""
