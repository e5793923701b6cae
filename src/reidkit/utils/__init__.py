"""Small shared helpers: errors, logging, files."""
