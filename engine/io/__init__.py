"""Reading input files and inferring their schema, in the order the bytes flow: ``source`` (path
checks, decompression, encoding), ``dialect`` (delimiter, header, record rows), ``columns`` (typed
conversion plans), ``reader`` (whole files and chunks) and ``infer`` (column roles, labels, ``load``)."""

from engine.io.infer import infer_schema, label_values, label_vector, load, validate_for_training
from engine.io.reader import LoadedFile, iter_csv_chunks, read_csv

__all__ = ["LoadedFile", "infer_schema", "iter_csv_chunks", "label_values", "label_vector", "load", "read_csv",
           "validate_for_training"]
