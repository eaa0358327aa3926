"""define.xml (Define-XML 2.1) of one delivery: datasets, variables, code lists, origins.

The structure follows the Define-XML v2.1 specification (an ODM 1.3.2 document with the def
extension): ``ODM/Study/MetaDataVersion`` holds ``def:Standards``, one ``ItemGroupDef`` per
dataset (its ``ItemRef`` in variable order, ``def:Class`` and ``def:leaf``), then ``ItemDef``,
``CodeList`` and ``MethodDef`` in that order. A value that comes from the EHR has
origin ``Predecessor`` with the FHIR path as its description; a derived one a ``MethodDef``
saying how.
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.etree import ElementTree as ET

from fhir_adapter.sdtm.formats import DatasetWriter
from fhir_adapter.sdtm.terms import SdtmTerms
from fhir_adapter.sdtm.variables import DOMAINS, Domain, Variable
from fhir_adapter.trial.definitions import StudyDefinition
from fhir_adapter.version import __version__

__all__ = ["DEFINE_FILE", "define_xml"]

DEFINE_FILE = "define.xml"
ODM = "http://www.cdisc.org/ns/odm/v1.3"
DEF = "http://www.cdisc.org/ns/def/v2.1"
XLINK = "http://www.w3.org/1999/xlink"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
CT_VERSION = "2025-03-28"  # the CDISC CT release the terms of mappings/sdtm.toml were checked in
#: Define-XML class of each domain (def:Class Name)
CLASSES = {"DM": "SPECIAL PURPOSE", "SV": "SPECIAL PURPOSE", "LB": "FINDINGS",
           "EX": "INTERVENTIONS", "TV": "TRIAL DESIGN"}
#: Dataset-JSON dataType -> Define-XML DataType
DATA_TYPES = {"string": "text", "integer": "integer", "decimal": "float",
              "datetime": "datetime"}
#: CDISC Sex (CT C66731)
SEX = {"F": "Female", "M": "Male", "U": "Unknown"}
NUMERIC_LENGTH = 8

ET.register_namespace("", ODM)
ET.register_namespace("def", DEF)
ET.register_namespace("xlink", XLINK)


def _o(tag: str) -> str:
    return f"{{{ODM}}}{tag}"


def _d(tag: str) -> str:
    return f"{{{DEF}}}{tag}"


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    translated = ET.SubElement(element, _o("TranslatedText"), {XML_LANG: "en"})
    translated.text = text
    return element


def define_xml(study: StudyDefinition, terms: SdtmTerms, stamp: str,
               written: Mapping[str, DatasetWriter]) -> bytes:
    """The define.xml document of the datasets just written."""
    root = ET.Element(_o("ODM"), {
        "ODMVersion": "1.3.2", "FileType": "Snapshot", "FileOID": f"{study.id}.SDTM.define",
        "CreationDateTime": stamp, "Originator": "fhir-adapter",
        "SourceSystem": "fhir-adapter", "SourceSystemVersion": __version__,
        _d("Context"): "Submission",
    })
    study_element = ET.SubElement(root, _o("Study"), {"OID": f"STDY.{study.id}"})
    names = ET.SubElement(study_element, _o("GlobalVariables"))
    for tag, text in (("StudyName", study.id), ("StudyDescription", study.title),
                      ("ProtocolName", study.id)):
        ET.SubElement(names, _o(tag)).text = text
    version = ET.SubElement(study_element, _o("MetaDataVersion"), {
        "OID": f"MDV.{study.id}.SDTMIG.3.4", "Name": f"{study.id} SDTM",
        _d("DefineVersion"): "2.1.0"})
    standards = ET.SubElement(version, _d("Standards"))
    ET.SubElement(standards, _d("Standard"), {"OID": "STD.SDTMIG", "Name": "SDTMIG",
                                              "Type": "IG", "Version": "3.4", "Status": "Final"})
    ET.SubElement(standards, _d("Standard"), {
        "OID": "STD.CT", "Name": "CDISC/NCI", "Type": "CT", "PublishingSet": "SDTM",
        "Version": CT_VERSION, "Status": "Final"})
    for name, domain in DOMAINS.items():
        _item_group(version, domain, written[name])
    for name, domain in DOMAINS.items():
        for v in domain.variables:
            _item_def(version, domain, v, written[name].lengths.get(v.name, 0))
    _code_lists(version, terms)
    for domain in DOMAINS.values():
        for v in domain.variables:
            if v.origin == "Derived":
                method = ET.SubElement(version, _o("MethodDef"), {
                    "OID": f"MT.{domain.name}.{v.name}", "Name": f"{domain.name}.{v.name}",
                    "Type": "Computation"})
                _text(method, _o("Description"), v.source)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _item_group(parent: ET.Element, domain: Domain, writer: DatasetWriter) -> None:
    name = domain.name
    group = ET.SubElement(parent, _o("ItemGroupDef"), {
        "OID": f"IG.{name}", "Domain": name, "Name": name,
        "Repeating": "No" if name in ("DM", "TV") else "Yes",
        "IsReferenceData": "Yes" if name == "TV" else "No", "SASDatasetName": name,
        _d("Structure"): domain.structure, "Purpose": "Tabulation",
        _d("StandardOID"): "STD.SDTMIG", _d("ArchiveLocationID"): f"LF.{name}"})
    _text(group, _o("Description"), domain.label)
    for order, v in enumerate(domain.variables, start=1):
        ref = {"ItemOID": f"IT.{name}.{v.name}", "OrderNumber": str(order),
               "Mandatory": "Yes" if v.core == "Req" else "No"}
        if v.key is not None:
            ref["KeySequence"] = str(v.key)
        if v.origin == "Derived":
            ref["MethodOID"] = f"MT.{name}.{v.name}"
        ET.SubElement(group, _o("ItemRef"), ref)
    ET.SubElement(group, _d("Class"), {"Name": CLASSES[name]})
    leaf = ET.SubElement(group, _d("leaf"), {"ID": f"LF.{name}",
                                              f"{{{XLINK}}}href": writer.path.name})
    ET.SubElement(leaf, _d("title")).text = writer.path.name


def _code_list_of(domain: Domain, v: Variable) -> str | None:
    if v.name in ("LBTESTCD", "LBSPEC") and domain.name == "LB":
        return f"CL.{v.name}"
    if v.name == "SEX":
        return "CL.SEX"
    if v.name.endswith("FL") and len(v.name) > 4:
        return "CL.NY"
    return None


def _item_def(parent: ET.Element, domain: Domain, v: Variable, longest: int) -> None:
    data_type = DATA_TYPES[v.data_type]
    attributes = {"OID": f"IT.{domain.name}.{v.name}", "Name": v.name, "DataType": data_type,
                  "SASFieldName": v.name}
    if data_type in ("text", "integer", "float"):
        attributes["Length"] = str(max(longest, 1) if data_type == "text" else
                                   max(longest, NUMERIC_LENGTH))
    item = ET.SubElement(parent, _o("ItemDef"), attributes)
    _text(item, _o("Description"), v.label)
    code_list = _code_list_of(domain, v)
    if code_list:
        ET.SubElement(item, _o("CodeListRef"), {"CodeListOID": code_list})
    if v.origin == "Collected":
        origin = ET.SubElement(item, _d("Origin"), {"Type": "Predecessor",
                                                    "Source": "Investigator"})
        _text(origin, _o("Description"), f"FHIR: {v.source}")
    elif v.origin == "Derived":
        ET.SubElement(item, _d("Origin"), {"Type": "Derived", "Source": "Sponsor"})
    else:
        origin = ET.SubElement(item, _d("Origin"), {"Type": v.origin, "Source": "Sponsor"})
        _text(origin, _o("Description"), v.source)


def _code_lists(parent: ET.Element, terms: SdtmTerms) -> None:
    tests = {t.testcd: t.test for t in terms.lab.values()}
    lists: list[tuple[str, str, dict[str, str | None]]] = [
        ("CL.LBTESTCD", "Laboratory Test Code", dict(sorted(tests.items()))),
        ("CL.LBSPEC", "Specimen", {t.spec: None for t in sorted(terms.lab.values(),
                                                                  key=lambda t: t.spec)}),
        ("CL.SEX", "Sex", dict(SEX)),
        ("CL.NY", "No Yes Response", {"Y": "Yes"}),
    ]
    for oid, name, items in lists:
        code_list = ET.SubElement(parent, _o("CodeList"), {
            "OID": oid, "Name": name, "DataType": "text", _d("StandardOID"): "STD.CT"})
        for coded, decode in items.items():
            if decode is None:
                ET.SubElement(code_list, _o("EnumeratedItem"), {"CodedValue": coded})
            else:
                item = ET.SubElement(code_list, _o("CodeListItem"), {"CodedValue": coded})
                _text(item, _o("Decode"), decode)
