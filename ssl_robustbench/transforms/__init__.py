"""Image transforms batched on tensors ([B,3,H,W] in [0,1]): SSL augmentations now; geometric shifts and
corruptions join them as their suites land."""
