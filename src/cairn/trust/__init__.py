"""Trust across the air gap: keys, signatures, attestations, verification, bundles."""
