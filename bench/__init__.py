"""Benchmarks of zoho-gateway against the Zoho sandbox, side by side with direct calls and nginx (./dev bench)."""
