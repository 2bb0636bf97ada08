"""Validates an SBOM with the official tools: CycloneDX's JSON schema (cyclonedx-python-lib,
strict) or the SPDX project's parser and validator (spdx-tools). Prints the problems and
exits 1 when there are any."""
import sys

kind, path = sys.argv[1], sys.argv[2]
if kind == "cyclonedx":
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    with open(path, encoding="utf-8") as f:
        error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(f.read())
    problems = [str(error)] if error else []
else:
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    problems = [m.validation_message for m in validate_full_spdx_document(parse_file(path), "SPDX-2.3")]
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
