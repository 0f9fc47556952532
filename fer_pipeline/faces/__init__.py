"""Face detection, alignment and cropping, shared by the crop stage and inference."""

from fer_pipeline.faces.cropper import DETECTORS, CropResult, FaceCropper

__all__ = ["DETECTORS", "CropResult", "FaceCropper"]
