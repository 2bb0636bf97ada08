"""Judges bareboat's VEX output by other means than bareboat's.

  check.py schema DOC          validates DOC against openvex/spec's JSON schema, with
                               jsonschema's format checker, and parses every purl with
                               packageurl-python
  check.py apply DOC SCAN DIGEST INSPECT
                               prints, as JSON, the findings of SCAN (`bareboat --json scan`)
                               that DOC puts aside, by the OpenVEX specification's matching:
                               a statement applies to a finding when its vulnerability is
                               the finding's, a product is the image (a pkg:oci purl whose
                               version is the image's digest) and a subcomponent is the
                               package (pkg:deb, same name and version, and its qualifiers,
                               here `arch`, the package's as INSPECT, `bareboat --json
                               inspect`, lists it); not_affected and fixed put a finding aside
"""
import json
import pathlib
import sys

import jsonschema
from packageurl import PackageURL

here = pathlib.Path(__file__).parent


def purls(doc):
    for statement in doc["statements"]:
        for product in statement["products"]:
            yield product["@id"]
            for sub in product.get("subcomponents", []):
                yield sub["@id"]


def schema(path):
    doc = json.loads(pathlib.Path(path).read_text())
    spec = json.loads((here.parent / "sbom" / "openvex-0.2.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(spec, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(doc), key=str)
    if errors:
        sys.exit("\n".join(str(e) for e in errors))
    for purl in purls(doc):
        PackageURL.from_string(purl)


def apply(path, scan_path, digest, inspect_path):
    doc = json.loads(pathlib.Path(path).read_text())
    scan = json.loads(pathlib.Path(scan_path).read_text())
    inspect = json.loads(pathlib.Path(inspect_path).read_text())
    arch_of = {p["name"]: p["architecture"] for p in inspect["packages"]}
    out = []
    for v in scan["scan"]["vulnerabilities"]:
        for statement in doc["statements"]:
            if statement["status"] not in ("not_affected", "fixed"):
                continue
            if statement["vulnerability"]["name"] != v["cve"]:
                continue
            applies = False
            for product in statement["products"]:
                image = PackageURL.from_string(product["@id"])
                if image.type != "oci" or image.version != digest:
                    continue
                for sub in product.get("subcomponents", []):
                    p = PackageURL.from_string(sub["@id"])
                    same = p.type == "deb" and p.name == v["package"] and p.version == v["version"]
                    if same and p.qualifiers == {"arch": arch_of[v["package"]]}:
                        applies = True
            if applies:
                out.append([v["cve"], v["package"], statement["status"]])
                break
    print(json.dumps(sorted(out)))


if __name__ == "__main__":
    {"schema": schema, "apply": apply}[sys.argv[1]](*sys.argv[2:])
