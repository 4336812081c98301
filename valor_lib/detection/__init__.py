"""Detector data, training and evaluation for transformers GroundingDINO (toy pretraining and fine-tuning on
VLM-verified pseudo-labels share this code).

- :mod:`.data`: COCO and ODVG datasets (``load_coco``, ``load_odvg``, ``write_odvg``)
- :mod:`.collate`: captions of positives + sampled negatives, label maps, model inputs
- :mod:`.train`: ``train_detector`` (AdamW, StepLR or cosine with a linear warm-up, clipping, freezing, balanced
  sampler, resumable)
- :mod:`.inference`: ``GroundingDinoDetector`` (prompts, thresholds, label filter, NMS, batching; raw outputs
  thresholded later: ``raw_batch``, ``RawDetections``)
- :mod:`.evaluate`: COCO mAP / AP50, precision / recall at fixed thresholds, operating points over a grid
- :mod:`.tiny`: a tiny GroundingDINO built from configs; :mod:`.toy`: its pretraining on the toy world
- :mod:`.pth`: Open-GroundingDino ``.pth`` checkpoints -> transformers
"""
