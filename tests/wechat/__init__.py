"""Local, strict stand-ins for WeChat Pay API v3 and the mini-program server APIs."""
