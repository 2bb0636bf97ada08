"""Validates an SBOM with the official tools: CycloneDX's JSON schema (cyclonedx-python-lib,
strict), or the SPDX 2.3 JSON schema (jsonschema, with spdx-2.3.schema.json beside this
script, from the SPDX specification's support/2.3 branch) and the SPDX project's parser and
validator (spdx-tools). Prints the problems and exits 1 when there are any."""
import json
import os
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

    import jsonschema

    schema_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spdx-2.3.schema.json")
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    with open(path, encoding="utf-8") as f:
        document = json.load(f)
    validator = jsonschema.Draft7Validator(schema)
    problems = [f"schema: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
    problems += [m.validation_message for m in validate_full_spdx_document(parse_file(path), "SPDX-2.3")]
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
