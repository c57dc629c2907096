"""Band layouts of the supported datasets, declared as data (torchgeo style)."""

from __future__ import annotations

from dataclasses import dataclass

CLASSES: tuple[str, ...] = (
    "AnnualCrop",
    "Forest",
    "HerbaceousVegetation",
    "Highway",
    "Industrial",
    "Pasture",
    "PermanentCrop",
    "Residential",
    "River",
    "SeaLake",
)


@dataclass(frozen=True)
class Band:
    name: str
    wavelength_nm: int


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives under the data root and what its rasters look like."""

    key: str
    folder: str
    suffix: str
    bands: tuple[Band, ...]
    dtype: str
    tile_size: int = 64
    classes: tuple[str, ...] = CLASSES

    @property
    def num_bands(self) -> int:
        return len(self.bands)

    @property
    def band_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bands)


RGB = DatasetSpec(
    key="rgb",
    folder="eurosat-rgb",
    suffix=".jpg",
    bands=(Band("B04", 665), Band("B03", 560), Band("B02", 490)),
    dtype="uint8",
)

# Band order of the EuroSAT MS GeoTIFFs: narrow NIR (B8A) is stored last.
MS = DatasetSpec(
    key="ms",
    folder="eurosat-ms",
    suffix=".tif",
    bands=(
        Band("B01", 443),
        Band("B02", 490),
        Band("B03", 560),
        Band("B04", 665),
        Band("B05", 705),
        Band("B06", 740),
        Band("B07", 783),
        Band("B08", 842),
        Band("B09", 945),
        Band("B10", 1375),
        Band("B11", 1610),
        Band("B12", 2190),
        Band("B8A", 865),
    ),
    dtype="uint16",
)

DATASETS: dict[str, DatasetSpec] = {RGB.key: RGB, MS.key: MS}
