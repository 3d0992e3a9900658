package imapd

import "unsafe"

// unsafePointer points at buf[off] (an inotify event header in the
// kernel's layout).
func unsafePointer(buf []byte, off int) unsafe.Pointer { return unsafe.Pointer(&buf[off]) }
