"""The agency test (issue 12): booking, sync, conflicts and duplicates tried together on real peers."""
