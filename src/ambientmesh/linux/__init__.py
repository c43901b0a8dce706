"""Thin adapters over the Linux kernel: network namespaces, links and routes, nftables, sysctls."""
