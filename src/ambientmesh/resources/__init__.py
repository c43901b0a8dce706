"""What users bring: resource kinds, manifest loading, strict validation and typed views."""
