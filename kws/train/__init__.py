"""Training code (torch). Never imported by the run-time path (kws.detector, kws.bundle, ...)."""
