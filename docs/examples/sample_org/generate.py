"""Generate the Northwind Manufacturing sample organisation (deterministic, seeded).

    python docs/examples/sample_org/generate.py            # rewrites the files next to this script
    python docs/examples/sample_org/generate.py --out DIR

Writes ``departments.csv``, ``employees.csv`` and the same org as ``org.json``.
Top-level department ids are stable short slugs other parts of Tandem rely on:
``executive`` (the CEO's office, the root), ``production``, ``sales``, ``finance``,
``hr``, ``it``, ``procurement`` and ``quality``. Sub-department ids are
``<parent>-<name>`` (e.g. ``production-assembly``). The CEO is ``E0001``.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

SEED = 2025
DOMAIN = "northwind.example"

FIRST_NAMES = [
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elena",
    "Felix",
    "Greta",
    "Hannah",
    "Ivan",
    "Julia",
    "Karim",
    "Laura",
    "Marco",
    "Nina",
    "Oliver",
    "Paula",
    "Quentin",
    "Rosa",
    "Samuel",
    "Tara",
    "Umar",
    "Vera",
    "Walter",
    "Xenia",
    "Yusuf",
    "Zoe",
    "Adrian",
    "Bianca",
    "Chen",
    "Daria",
    "Emil",
    "Fatima",
    "Georg",
    "Helena",
    "Igor",
    "Jonas",
    "Katrin",
    "Leon",
    "Maya",
    "Noah",
    "Olga",
    "Pavel",
    "Rania",
    "Stefan",
    "Tomas",
    "Ursula",
    "Viktor",
    "Wei",
    "Aisha",
    "Bruno",
    "Clara",
    "Dmitri",
    "Eva",
    "Finn",
    "Gloria",
    "Hugo",
    "Ines",
    "Jakub",
    "Lena",
    "Mateo",
]
LAST_NAMES = [
    "Keller",
    "Novak",
    "Silva",
    "Brandt",
    "Rossi",
    "Meyer",
    "Kowalski",
    "Larsen",
    "Okafor",
    "Schmidt",
    "Dubois",
    "Horvat",
    "Petrov",
    "Jansen",
    "Costa",
    "Weber",
    "Nguyen",
    "Fischer",
    "Moreau",
    "Berg",
    "Lindqvist",
    "Hoffmann",
    "Kaya",
    "Wagner",
    "Romero",
    "Becker",
    "Ivanova",
    "Schulz",
    "Martins",
    "Yilmaz",
    "Richter",
    "Bauer",
    "Klein",
    "Wolf",
    "Neumann",
    "Svoboda",
    "Haas",
    "Lehmann",
    "Koch",
    "Vogel",
    "Fuchs",
    "Peters",
    "Santos",
    "Marino",
    "Jovanovic",
    "Nielsen",
    "Ahmed",
    "Tanaka",
    "Murphy",
    "Walsh",
    "Byrne",
    "Eriksen",
]


def salary_band(grade: int) -> str:
    """Bands group grades: B1 = G1-G4 ... B6 = G14-G15."""
    for band, top in (("B1", 4), ("B2", 6), ("B3", 8), ("B4", 10), ("B5", 13)):
        if grade <= top:
            return band
    return "B6"


@dataclass
class Org:
    rng: random.Random
    departments: list[dict[str, str]] = field(default_factory=list)
    employees: list[dict[str, str]] = field(default_factory=list)
    emails: set[str] = field(default_factory=set)

    def person(self, department: str, manager: str | None, title: str, grade: int) -> str:
        employee_id = f"E{len(self.employees) + 1:04d}"
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        local = f"{first}.{last}".lower()
        email, n = f"{local}@{DOMAIN}", 2
        while email in self.emails:
            email, n = f"{local}{n}@{DOMAIN}", n + 1
        self.emails.add(email)
        self.employees.append(
            {
                "employee_id": employee_id,
                "name": f"{first} {last}",
                "email": email,
                "department_id": department,
                "manager_id": manager or "",
                "job_title": title,
                "grade": f"G{grade}",
                "salary_band": salary_band(grade),
            }
        )
        return employee_id

    def department(self, department_id: str, name: str, parent: str | None, head: str) -> None:
        self.departments.append(
            {"department_id": department_id, "name": name, "parent_id": parent or "", "head_employee_id": head}
        )

    def team(self, department: str, manager: str, count: int, titles: list[tuple[str, int]]) -> list[str]:
        """``count`` people reporting to ``manager``, with titles drawn from ``titles`` (weighted by order)."""
        weights = [len(titles) - i for i in range(len(titles))]
        return [self.person(department, manager, *self.rng.choices(titles, weights=weights)[0]) for _ in range(count)]

    def unit(
        self,
        department_id: str,
        name: str,
        parent: str,
        parent_head: str,
        head: tuple[str, int],
        staff: list[tuple[str, int, list[tuple[str, int]], int]],
    ) -> str:
        """A (sub-)department: a head reporting to ``parent_head`` and teams of ``(lead title, grade, member
        titles, size)``; a lead title of ``""`` puts the members directly under the head."""
        head_id = self.person(department_id, parent_head, *head)
        self.department(department_id, name, parent, head_id)
        for lead_title, lead_grade, titles, size in staff:
            lead = self.person(department_id, head_id, lead_title, lead_grade) if lead_title else head_id
            self.team(department_id, lead, size, titles)
        return head_id


def build(seed: int = SEED) -> Org:
    org = Org(rng=random.Random(seed))
    ceo = org.person("executive", None, "Chief Executive Officer", 15)
    org.department("executive", "Executive Office", None, ceo)
    org.person("executive", ceo, "Executive Assistant", 7)
    org.person("executive", ceo, "Head of Strategy", 12)
    org.person("executive", ceo, "Corporate Communications Manager", 10)

    # Production: the largest department, with four sub-departments.
    vp_prod = org.unit(
        "production",
        "Production",
        "executive",
        ceo,
        ("VP Production", 14),
        [
            ("", 0, [("Production Engineer", 8), ("Senior Production Engineer", 9), ("Lean Manufacturing Lead", 9)], 5),
            ("", 0, [("EHS Manager", 10)], 1),
        ],
    )
    operators = [("Assembly Operator I", 4), ("Assembly Operator II", 5), ("Senior Assembly Technician", 6)]
    org.unit(
        "production-assembly",
        "Assembly",
        "production",
        vp_prod,
        ("Assembly Manager", 11),
        [("Shift Supervisor", 8, operators, 12) for _ in range(5)],
    )
    machinists = [("CNC Machinist", 5), ("Senior CNC Machinist", 6), ("CNC Programmer", 7)]
    org.unit(
        "production-machining",
        "Machining",
        "production",
        vp_prod,
        ("Machining Manager", 11),
        [("Machining Supervisor", 8, machinists, 10) for _ in range(4)],
    )
    org.unit(
        "production-maintenance",
        "Maintenance",
        "production",
        vp_prod,
        ("Maintenance Manager", 10),
        [
            ("Maintenance Supervisor", 8, [("Maintenance Technician", 6), ("Industrial Electrician", 6)], 7)
            for _ in range(2)
        ],
    )
    org.unit(
        "production-planning",
        "Production Planning & Logistics",
        "production",
        vp_prod,
        ("Planning & Logistics Manager", 10),
        [
            ("", 0, [("Production Planner", 7), ("Materials Scheduler", 6)], 5),
            ("Warehouse Team Lead", 7, [("Warehouse Operative", 4), ("Forklift Driver", 4)], 8),
        ],
    )

    vp_sales = org.unit(
        "sales",
        "Sales & Customer Service",
        "executive",
        ceo,
        ("VP Sales", 14),
        [
            ("Marketing Manager", 10, [("Marketing Specialist", 7), ("Product Marketing Specialist", 8)], 3),
            ("", 0, [("Sales Operations Analyst", 8)], 2),
        ],
    )
    org.unit(
        "sales-domestic",
        "Domestic Sales",
        "sales",
        vp_sales,
        ("Domestic Sales Director", 12),
        [("Regional Sales Manager", 10, [("Account Manager", 8), ("Key Account Manager", 9)], 5) for _ in range(3)],
    )
    org.unit(
        "sales-export",
        "Export Sales",
        "sales",
        vp_sales,
        ("Export Sales Director", 12),
        [("", 0, [("Export Account Manager", 8), ("Sales Coordinator", 6)], 10)],
    )
    org.unit(
        "sales-service",
        "Customer Service",
        "sales",
        vp_sales,
        ("Customer Service Manager", 10),
        [("Customer Service Team Lead", 7, [("Customer Service Representative", 5)], 9)],
    )

    cfo = org.unit(
        "finance",
        "Finance",
        "executive",
        ceo,
        ("Chief Financial Officer", 14),
        [("", 0, [("Treasury Manager", 10), ("Finance Business Partner", 9)], 2)],
    )
    org.unit(
        "finance-accounting",
        "Accounting",
        "finance",
        cfo,
        ("Chief Accountant", 11),
        [("", 0, [("Accountant", 7), ("Senior Accountant", 8), ("Accounts Payable Clerk", 5)], 9)],
    )
    org.unit(
        "finance-controlling",
        "Controlling & FP&A",
        "finance",
        cfo,
        ("Head of Controlling", 12),
        [("", 0, [("Controller", 8), ("FP&A Analyst", 8), ("Cost Accountant", 7)], 6)],
    )

    org.unit(
        "hr",
        "Human Resources",
        "executive",
        ceo,
        ("HR Director", 13),
        [
            (
                "",
                0,
                [
                    ("HR Business Partner", 9),
                    ("Recruiter", 7),
                    ("Payroll Specialist", 7),
                    ("Learning & Development Specialist", 7),
                    ("HR Coordinator", 5),
                ],
                12,
            )
        ],
    )
    org.unit(
        "it",
        "Information Technology",
        "executive",
        ceo,
        ("IT Director", 13),
        [
            ("Infrastructure Team Lead", 9, [("Systems Administrator", 7), ("Network Engineer", 8)], 5),
            (
                "Business Applications Team Lead",
                10,
                [("ERP Developer", 8), ("MES Engineer", 8), ("Data Analyst", 7)],
                6,
            ),
            ("Service Desk Lead", 7, [("IT Support Technician", 5)], 5),
            ("", 0, [("Information Security Analyst", 9)], 1),
        ],
    )
    org.unit(
        "procurement",
        "Procurement",
        "executive",
        ceo,
        ("Procurement Director", 13),
        [
            ("", 0, [("Category Manager", 10)], 2),
            ("Purchasing Manager", 10, [("Buyer", 7), ("Strategic Buyer", 8), ("Purchasing Assistant", 5)], 13),
        ],
    )
    org.unit(
        "quality",
        "Quality Assurance",
        "executive",
        ceo,
        ("Quality Director", 13),
        [("", 0, [("Quality Engineer", 8), ("Supplier Quality Engineer", 8)], 6)]
        + [("QC Inspection Lead", 7, [("Quality Inspector", 5), ("Senior Quality Inspector", 6)], 9) for _ in range(2)]
        + [("Metrology Lab Lead", 8, [("Metrology Technician", 6), ("Lab Technician", 5)], 4)],
    )
    return org


def write(directory: Path, org: Org | None = None) -> list[Path]:
    org = org or build()
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, rows in (("departments.csv", org.departments), ("employees.csv", org.employees)):
        path = directory / file_name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        written.append(path)

    def none_if_empty(row: dict[str, str]) -> dict[str, str | None]:
        return {k: (v or None) for k, v in row.items()}

    document = {
        "departments": [none_if_empty(d) for d in org.departments],
        "employees": [none_if_empty(e) for e in org.employees],
    }
    json_path = directory / "org.json"
    json_path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    written.append(json_path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    org = build(args.seed)
    for path in write(args.out, org):
        print(f"wrote {path}")
    print(f"{len(org.departments)} departments, {len(org.employees)} employees")


if __name__ == "__main__":
    main()
