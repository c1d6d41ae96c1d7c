"""Value types every layer shares."""
