"""An import-linter contract for ARCHITECTURE §2: another app may import an app's ``services``,
``selectors``, ``events`` and ``models`` (for foreign keys) — nothing else."""

from importlinter import Contract, ContractCheck, fields, output


class AppBoundaryContract(Contract):
    type_name = "app_boundaries"

    apps = fields.ListField(subfield=fields.StringField())
    public_modules = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:
        apps = set(self.apps)
        public = set(self.public_modules)
        violations = []
        for importer_app in sorted(apps):
            if importer_app not in graph.modules:
                continue
            for importer in sorted(graph.find_descendants(importer_app) | {importer_app}):
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    parts = imported.split(".")
                    if parts[0] not in apps or parts[0] == importer_app:
                        continue
                    if len(parts) == 1 or parts[1] in public:
                        continue
                    lines = [
                        str(detail["line_number"])
                        for detail in graph.get_import_details(importer=importer, imported=imported)
                    ]
                    violations.append((importer, imported, ", ".join(lines)))
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        allowed = ", ".join(self.public_modules)
        for importer, imported, lines in check.metadata["violations"]:
            output.print_error(f"{importer} imports {imported} (line {lines}); use only {allowed} of another app.")
            output.new_line()
