"""The model: its settings (model.config), the network (model.network) and its
checkpoints (model.checkpoint), the video contract (model.video, model.transform).

The package imports none of them: a process takes only the modules it uses, so one that
reads videos (a DataLoader worker) does not import torchvision with the network.
"""
