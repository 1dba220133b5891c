#!/usr/bin/python3
"""Messages built by templates/mime.c, read back by Python's email package
(an independent MIME parser).

usage: check_mime.py TEST_MIME       run TEST_MIME (the unit test binary)
                                     with EDM_MIME_EML_DIR set to a fresh
                                     temp dir, then check what it wrote
       check_mime.py --dir DIR       check DIR/*.eml as they are

Each NAME.eml comes with NAME.json holding what a reader must see:
subject, from_name, from_addr, to_name, to, text (the plain body, LF line
ends), html (or null), structure (the content types of the MIME tree, as
"multipart/mixed(text/plain,application/pdf)"), attachments (path of the
original file, filename, cid or null for a plain attachment).

Checked per message: the raw octets (CRLF only, 7-bit, no line over 998,
header lines within 78), no parser defects, exactly one Subject/From/To and
no Bcc, the decoded headers, the tree, both bodies, and every attachment's
name, disposition, Content-ID and content. Fails when no message is found.
"""
import email
import email.policy
import glob
import json
import os
import subprocess
import sys
import tempfile


def shape(part):
    """Content types of a MIME tree as a string."""
    if part.is_multipart():
        kids = ",".join(shape(p) for p in part.iter_parts())
        return "%s(%s)" % (part.get_content_type(), kids)
    return part.get_content_type()


def lf(s):
    return s.replace("\r\n", "\n")


def check_raw(data, errs):
    """Octet-level rules: CRLF only, 7-bit, line lengths."""
    if any(b >= 0x80 for b in data):
        errs.append("octets >= 0x80 in the message")
    stripped = data.replace(b"\r\n", b"")
    if b"\r" in stripped or b"\n" in stripped:
        errs.append("bare CR or LF in the message")
    head, sep, _ = data.partition(b"\r\n\r\n")
    if not sep:
        errs.append("no blank line after the header")
    for n, line in enumerate(data.split(b"\r\n"), 1):
        if len(line) > 998:
            errs.append("line %d is %d octets" % (n, len(line)))
    for n, line in enumerate(head.split(b"\r\n"), 1):
        if len(line) > 78:
            errs.append("header line %d is %d octets: %r" % (n, len(line), line[:90]))


def check_message(eml, exp):
    errs = []
    with open(eml, "rb") as f:
        data = f.read()
    check_raw(data, errs)
    msg = email.message_from_bytes(data, policy=email.policy.default)

    for part in msg.walk():
        if part.defects:
            errs.append("defects in %s: %r" % (part.get_content_type(), part.defects))
    for name in ("subject", "from", "to", "date", "message-id", "mime-version"):
        got = msg.get_all(name) or []
        if len(got) != 1:
            errs.append("%d %s headers" % (len(got), name))
    if msg.get_all("bcc"):
        errs.append("a Bcc header appeared: %r" % msg.get_all("bcc"))
    for name, value in msg.items():
        if name.lower() in ("bcc", "cc"):
            errs.append("header %s: %r" % (name, value))

    if str(msg["subject"]) != exp["subject"]:
        errs.append("subject %r != %r" % (str(msg["subject"]), exp["subject"]))
    for field, name_key, addr_key in (("from", "from_name", "from_addr"),
                                      ("to", "to_name", "to")):
        addrs = msg[field].addresses
        if len(addrs) != 1:
            errs.append("%s holds %d addresses: %r" % (field, len(addrs), str(msg[field])))
            continue
        if addrs[0].display_name != exp[name_key]:
            errs.append("%s name %r != %r" % (field, addrs[0].display_name, exp[name_key]))
        if addrs[0].addr_spec != exp[addr_key]:
            errs.append("%s addr %r != %r" % (field, addrs[0].addr_spec, exp[addr_key]))

    got_shape = shape(msg)
    if got_shape != exp["structure"]:
        errs.append("structure %s != %s" % (got_shape, exp["structure"]))

    plain = msg.get_body(("plain",))
    if plain is None:
        errs.append("no text/plain body")
    else:
        if plain.get_content_charset() != "utf-8":
            errs.append("text charset %r" % plain.get_content_charset())
        if lf(plain.get_content()) != lf(exp["text"]):
            errs.append("text %r != %r" % (plain.get_content(), exp["text"]))
    html = msg.get_body(("html",))
    if exp["html"] is None:
        if html is not None:
            errs.append("unexpected text/html body")
    elif html is None:
        errs.append("no text/html body")
    elif lf(html.get_content()) != lf(exp["html"]):
        errs.append("html %r != %r" % (html.get_content(), exp["html"]))

    leaves = [p for p in msg.walk()
              if not p.is_multipart() and p.get_filename() is not None]
    if len(leaves) != len(exp["attachments"]):
        errs.append("%d named parts, want %d" % (len(leaves), len(exp["attachments"])))
    for att in exp["attachments"]:
        found = [p for p in leaves if p.get_filename() == att["filename"]]
        if len(found) != 1:
            errs.append("attachment %r: %d parts (names: %r)" % (
                att["filename"], len(found), [p.get_filename() for p in leaves]))
            continue
        part = found[0]
        with open(att["path"], "rb") as f:
            want = f.read()
        if part.get_payload(decode=True) != want:
            errs.append("attachment %r: content differs" % att["filename"])
        if part["content-transfer-encoding"] != "base64":
            errs.append("attachment %r: %s" % (att["filename"],
                                              part["content-transfer-encoding"]))
        disp = part.get_content_disposition()
        if att["cid"] is None:
            if disp != "attachment" or part["content-id"] is not None:
                errs.append("attachment %r: disposition %r, cid %r" % (
                    att["filename"], disp, part["content-id"]))
        else:
            if disp != "inline" or str(part["content-id"]) != att["cid"]:
                errs.append("inline %r: disposition %r, cid %r" % (
                    att["filename"], disp, part["content-id"]))
            if part.get_content_type() not in ("image/png", "image/jpeg", "image/gif"):
                errs.append("inline %r: type %s" % (att["filename"], part.get_content_type()))
    return errs


def check_dir(d):
    emls = sorted(glob.glob(os.path.join(d, "*.eml")))
    if not emls:
        print("FAIL: no .eml files in %s" % d)
        return 1
    failed = 0
    for eml in emls:
        with open(eml[:-4] + ".json", encoding="utf-8") as f:
            exp = json.load(f)
        errs = check_message(eml, exp)
        name = os.path.basename(eml)
        if errs:
            failed += 1
            print("FAIL %s" % name)
            for e in errs:
                print("    " + e)
        else:
            print("ok   %s" % name)
    print("%d of %d messages failed" % (failed, len(emls)))
    return 1 if failed else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--dir":
        return check_dir(argv[2])
    if len(argv) != 2:
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory(prefix="edm-mime-eml-") as d:
        env = dict(os.environ, EDM_MIME_EML_DIR=d)
        run = subprocess.run([argv[1]], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        if run.returncode != 0:
            sys.stdout.write(run.stdout.decode("utf-8", "replace"))
            print("FAIL: %s exited with %d" % (argv[1], run.returncode))
            return 1
        return check_dir(d)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
