"""The multimodal input pipeline: manifests -> rows -> columns (composed by a ``Preprocessor``,
adapted on train) -> ``tf.data``.

Public entry points: ``Preprocessor``, ``fit_preprocessor``, ``build_dataset``, ``num_examples``,
``write_tfrecords``, ``validate`` / ``format_bad_rows``, ``read_manifest``, ``DataError`` and
``data_errors``. The element contract is in ``mmkeras.data.schema``; one class per modality in
``mmkeras.data.columns``.
"""

from mmkeras.data.diagnosis import data_errors
from mmkeras.data.errors import DataError
from mmkeras.data.manifest import ManifestError, read_manifest
from mmkeras.data.pipeline import build_dataset, fit_preprocessor, num_examples
from mmkeras.data.preprocessor import Preprocessor
from mmkeras.data.schema import FeatureSpec, InputSpec
from mmkeras.data.tfrecord import write_tfrecords
from mmkeras.data.validate import BadRow, format_bad_rows, validate

__all__ = ["BadRow", "DataError", "FeatureSpec", "InputSpec", "ManifestError", "Preprocessor", "build_dataset",
           "data_errors", "fit_preprocessor", "format_bad_rows", "num_examples", "read_manifest",
           "validate", "write_tfrecords"]
