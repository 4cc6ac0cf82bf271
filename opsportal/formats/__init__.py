"""The portal's date formats (FORMAT_MODULE_PATH): one date-time format everywhere."""
