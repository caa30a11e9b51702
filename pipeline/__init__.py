"""firsthand's Beam pipeline: thin composites wiring readers, detectors, dedup and writers."""
