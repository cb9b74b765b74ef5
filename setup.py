"""Pure-Python package: no compiled extension (SGB's `_C` is replaced by torchvision.ops)."""
from setuptools import find_packages, setup

setup(
    name="maskrcnn_benchmark",
    version="0.1.0",
    description="Neural Motifs scene graph generation with self-supervised relation alignment",
    packages=find_packages(include=["maskrcnn_benchmark", "maskrcnn_benchmark.*"]),
    package_data={"maskrcnn_benchmark": ["data/resources/*.json"]},
    python_requires=">=3.10",  # faster-coco-eval 1.8
    install_requires=[
        "torch>=2.1,<3",
        "torchvision>=0.16",
        "numpy>=1.22",
        "h5py>=3.0",
        "yacs>=0.1.8",
        "tensorboard>=2.10",
        "Pillow>=9.0",
        "tqdm>=4.60",
        "matplotlib>=3.5",
        "faster-coco-eval>=1.8",  # COCO box AP (C++ COCOeval; SGB ran pycocotools)
    ],
    # pycocotools: the tests check faster-coco-eval's numbers against it
    extras_require={"test": ["pytest>=7", "pycocotools>=2.0.6"]},
)
