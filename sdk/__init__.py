"""Client SDKs for systems that integrate with Tandem (department systems emitting metrics)."""
