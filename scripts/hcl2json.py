"""Prints the Terraform of a folder as JSON: {"file.tf": <python-hcl2's parse>, ...}, every .tf file under it
(recursively, .terraform/ aside). A file that does not parse is an error naming it. Run with the python of
.venv-infra/hcl2 (scripts/setup makes it); InfraTests reads its output."""

import json
import pathlib
import sys

import hcl2

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "infra")
parsed = {}
for path in sorted(root.rglob("*.tf")):
    if ".terraform" in path.parts:
        continue
    try:
        with path.open() as file:
            parsed[str(path.relative_to(root))] = hcl2.load(file)
    except Exception as error:  # lark's errors carry the line and column
        sys.exit(f"{path}: does not parse: {error}")
json.dump(parsed, sys.stdout, indent=1, sort_keys=True)
