"""Enforcers apply decisions locally (nftables, log/dry-run, …)."""
