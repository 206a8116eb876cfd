"""Services over the project: photo import and decoding, DICOM, export, the demo project and the
annotate commands."""
