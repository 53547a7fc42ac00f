"""Wire definition of the V2 gRPC service (``inference.GRPCInferenceService``)."""
