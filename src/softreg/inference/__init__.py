"""From a trained run to predictions: the Predictor (rows, tables, pictures, svmlight lines), the
far-from-data check, pictures in and out, batch prediction of files, and ONNX export."""
