"""svmlight / LIBSVM files of sparse rows: in memory and streamed."""
