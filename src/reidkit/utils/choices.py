"""Valid values shared by the library and the command line.

One home for each list, so the CLI's ``choices=`` and the library's checks cannot drift apart.
Nothing heavy is imported here: ``reidkit --help`` lists these without loading torch.
"""

DISTANCES = ("euclidean", "cosine")
INPUT_FORMATS = ("float-nchw", "uint8-nhwc", "uint8-nchw")
EXPORTERS = ("auto", "torchscript", "dynamo")
PRECISIONS = ("fp32", "fp16", "int8")
EXPORT_FORMATS = ("onnx", "openvino")
INDEX_KINDS = ("exact", "flat", "ivf", "ivfpq")
DEVICES = ("auto", "cpu", "cuda")
