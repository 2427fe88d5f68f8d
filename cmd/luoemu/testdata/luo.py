#!/usr/bin/env python3
"""A program in another language using LUO through /dev/liveupdate with
nothing but the standard library: fcntl.ioctl, os.memfd_create, struct.

  luo.py stage1 kexec   preserve a memfd, then run "luoemu kexec" ($LUOEMU)
  luo.py stage1 wait    preserve a memfd, print READY and wait to be killed
  luo.py stage2         retrieve it, check its data, finish the session

Request numbers and struct layouts are those of
include/uapi/linux/liveupdate.h, for x86_64 (_IO has no size or
direction bits there).
"""
import errno
import fcntl
import os
import struct
import sys
import time

DEVICE = "/dev/liveupdate"
SESSION = b"py-session"
TOKEN = 0x5EED
DATA = b"preserved by python across the live update\n" * 100


def _IO(typ, nr):
    return (typ << 8) | nr


LUO = 0xBA
CREATE_SESSION = _IO(LUO, 0x00)
RETRIEVE_SESSION = _IO(LUO, 0x01)
PRESERVE_FD = _IO(LUO, 0x40)
RETRIEVE_FD = _IO(LUO, 0x41)
FINISH = _IO(LUO, 0x42)

# struct liveupdate_ioctl_{create,retrieve}_session: u32 size, s32 fd, u8 name[64]
SESSION_FMT = "=Ii64s"
# struct liveupdate_session_{preserve,retrieve}_fd: u32 size, s32 fd, u64 token
FD_FMT = "=IiQ"
# struct liveupdate_session_finish: u32 size, u32 reserved
FINISH_FMT = "=II"


def call(fd, req, fmt, *fields):
    buf = bytearray(struct.pack(fmt, struct.calcsize(fmt), *fields))
    fcntl.ioctl(fd, req, buf, True)
    return struct.unpack(fmt, buf)


def stage1(mode):
    dev = os.open(DEVICE, os.O_RDWR)
    _, sess, _ = call(dev, CREATE_SESSION, SESSION_FMT, -1, SESSION)
    mfd = os.memfd_create("py-data")
    os.write(mfd, DATA)
    call(sess, PRESERVE_FD, FD_FMT, mfd, TOKEN)
    print("stage 1: pid %d preserved %d bytes under token %#x in session %s"
          % (os.getpid(), len(DATA), TOKEN, SESSION.decode()), flush=True)
    if mode == "kexec":
        # The sessions stay open in this process while luoemu freezes
        # them; the live update then kills it.
        luoemu = os.environ.get("LUOEMU", "luoemu")
        status = os.spawnvp(os.P_WAIT, luoemu, [luoemu, "kexec"])
        print("stage 1: luoemu kexec returned %d" % status, flush=True)
        return 1
    print("READY", flush=True)
    while True:
        time.sleep(60)


def stage2():
    dev = os.open(DEVICE, os.O_RDWR)
    _, sess, _ = call(dev, RETRIEVE_SESSION, SESSION_FMT, -1, SESSION)
    _, mfd, _ = call(sess, RETRIEVE_FD, FD_FMT, -1, TOKEN)
    got = os.pread(mfd, len(DATA) + 1, 0)
    if got != DATA:
        print("stage 2: data differs: %d bytes, want %d" % (len(got), len(DATA)))
        return 1
    # A second retrieve of the token gives the same file again (the
    # kernel's luo_retrieve_file returns the retrieved file).
    _, again, _ = call(sess, RETRIEVE_FD, FD_FMT, -1, TOKEN)
    if again == mfd or os.fstat(again).st_ino != os.fstat(mfd).st_ino:
        print("stage 2: second retrieve: fd %d, not a new fd of the same file" % again)
        return 1
    # An unknown token: ENOENT.
    try:
        call(sess, RETRIEVE_FD, FD_FMT, -1, TOKEN + 1)
        print("stage 2: an unknown token was retrieved")
        return 1
    except OSError as e:
        if e.errno != errno.ENOENT:
            print("stage 2: unknown token: %s, want ENOENT" % e)
            return 1
    call(sess, FINISH, FINISH_FMT, 0)
    print("stage 2: PASSED: %d bytes back from token %#x, session finished"
          % (len(got), TOKEN))
    return 0


def main(argv):
    if argv[1:2] == ["stage1"] and argv[2:3] in (["kexec"], ["wait"]):
        return stage1(argv[2])
    if argv[1:] == ["stage2"]:
        return stage2()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
