"""The model: its settings (model.config), the network (model.network), its checkpoints
(model.checkpoint) and its view of a video (model.transform, clips read through
decoding.video).

The package imports none of them: a process takes only the modules it uses, so one that
reads videos (a DataLoader worker) does not import torchvision with the network.
"""
