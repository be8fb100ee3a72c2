"""Training code (torch) of the head the model ships (kws.train.head, measured by
kws.train.head_eval). Never imported by the run-time path (kws.spot.detector, kws.model, ...)."""
