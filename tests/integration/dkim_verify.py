#!/usr/bin/python3
"""dkim_verify.py - check edm's DKIM signatures with python3-dkim (dkimpy),
an implementation independent of edm's OpenSSL code.

Usage:
  dkim_verify.py RECORD_FILE MSG.eml [--expect-fail] [--signatures N]
  dkim_verify.py --manifest MANIFEST

RECORD_FILE holds zone-file TXT lines as dkim_keygen() writes them:
  SELECTOR._domainkey.DOMAIN. IN TXT "v=DKIM1; k=rsa; p=..." "..."
Lookups are answered from that file only (no DNS). Every DKIM-Signature on
the message is verified (dkimpy's dkim.verify() checks only the topmost).
A good message passes when every signature verifies; with --expect-fail it
passes when every signature fails. Either way the signature fields must be
well formed for edm: relaxed/relaxed, no l=, physical lines <= 78 octets.

MANIFEST lines: "pass|fail RECORD_FILE MSG_FILE NSIG" (paths relative to
the manifest; '#' starts a comment). Exit status 0 when all entries behave
as expected, 1 otherwise.

Needs the Debian packages python3-dkim and python3-nacl (Ed25519; a
dependency of python3-dkim).
"""
import os
import re
import sys

import dkim
import dkim.util

FOLD_WIDTH = 78  # RFC 5322 2.1.1


def load_records(path):
    """Map b'name.' -> TXT text (the quoted strings concatenated)."""
    records = {}
    with open(path, 'rb') as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(b';'):
                continue
            m = re.match(rb'(\S+)\s+IN\s+TXT\s+(.*)$', line)
            if m is None:
                raise ValueError('%s: not a TXT record line: %r' % (path, line))
            strings = re.findall(rb'"([^"]*)"', m.group(2))
            for s in strings:
                if len(s) > 255:
                    raise ValueError('%s: TXT string over 255 octets' % path)
            name = m.group(1).lower()
            if not name.endswith(b'.'):
                name += b'.'
            records[name] = b''.join(strings)
    return records


def signature_fields(msg):
    """The raw DKIM-Signature fields (bytes, with folding) in order."""
    head = re.split(rb'\r?\n\r?\n', msg, maxsplit=1)[0]
    fields = re.split(rb'\r?\n(?![ \t])', head)
    return [f for f in fields if f.lower().startswith(b'dkim-signature:')]


def check_form(field):
    """Problems with the form edm promises (empty list when fine)."""
    problems = []
    for line in re.split(rb'\r?\n', field):
        if len(line) > FOLD_WIDTH:
            problems.append('line of %d octets' % len(line))
    value = re.sub(rb'\r?\n', b'', field.split(b':', 1)[1])
    tags = dkim.util.parse_tag_value(value)
    if b'l' in tags:
        problems.append('l= present')
    if tags.get(b'c') != b'relaxed/relaxed':
        problems.append('c=%r' % tags.get(b'c'))
    if tags.get(b'a') not in (b'rsa-sha256', b'ed25519-sha256'):
        problems.append('a=%r' % tags.get(b'a'))
    return problems


def verify(record_file, msg_file, expect_fail=False, nsig=None):
    """True when the message behaves as expected; prints why not."""
    records = load_records(record_file)

    def dnsfunc(name, timeout=5):
        return records.get(name.lower())

    with open(msg_file, 'rb') as f:
        msg = f.read()
    fields = signature_fields(msg)
    label = os.path.basename(msg_file)
    if not fields:
        print('%s: no DKIM-Signature' % label)
        return False
    if nsig is not None and len(fields) != nsig:
        print('%s: %d signatures, expected %d' % (label, len(fields), nsig))
        return False
    ok = True
    results = []
    for i, field in enumerate(fields):
        problems = check_form(field)
        if problems:
            print('%s: signature %d: %s' % (label, i, ', '.join(problems)))
            ok = False
        d = dkim.DKIM(msg)
        try:
            res = bool(d.verify(idx=i, dnsfunc=dnsfunc))
        except dkim.DKIMException as e:
            print('%s: signature %d: %s' % (label, i, e))
            res = False
        results.append(res)
    if expect_fail:
        if any(results):
            print('%s: expected to fail, but signatures verified: %s'
                  % (label, results))
            ok = False
    elif not all(results):
        print('%s: signatures did not verify: %s' % (label, results))
        ok = False
    print('%s %s: expected %s; %d signatures: %s' % (
        'ok' if ok else 'FAIL', label,
        'all invalid' if expect_fail else 'all valid',
        len(results), ' '.join('valid' if r else 'invalid' for r in results)))
    return ok


def run_manifest(path):
    base = os.path.dirname(os.path.abspath(path))
    ok, count = True, 0
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].split()
            if not line:
                continue
            expect, rec, msg, nsig = line
            if expect not in ('pass', 'fail'):
                raise ValueError('manifest: bad expectation %r' % expect)
            count += 1
            ok &= verify(os.path.join(base, rec), os.path.join(base, msg),
                         expect == 'fail', int(nsig))
    if count == 0:
        print('manifest %s: no entries' % path)
        return False
    return ok


def main(argv):
    if len(argv) == 3 and argv[1] == '--manifest':
        return 0 if run_manifest(argv[2]) else 1
    args = argv[1:]
    expect_fail = '--expect-fail' in args
    nsig = None
    if '--signatures' in args:
        i = args.index('--signatures')
        nsig = int(args[i + 1])
        del args[i:i + 2]
    args = [a for a in args if a != '--expect-fail']
    if len(args) != 2:
        sys.stderr.write(__doc__)
        return 2
    return 0 if verify(args[0], args[1], expect_fail, nsig) else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv))
