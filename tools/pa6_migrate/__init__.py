"""tools/pa6_migrate package."""
