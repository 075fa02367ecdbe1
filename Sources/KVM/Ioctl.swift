import CKVM
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The three shapes of ioctl the VMM uses, each retried on EINTR and turned into a typed error.
///
/// AUDITED UNSAFE FILE (with RunPage.swift): `withPointer` hands the kernel the address of a Swift value
/// for the duration of one call; the kernel reads or writes exactly sizeof(argument) bytes, which is the size
/// of the C struct the request number encodes.
enum Ioctl {
    @inline(__always)
    static func none(_ fd: Int32, _ request: UInt, _ name: StaticString) throws(KVMError) -> Int32 {
        try retrying(name) { ckvm_ioctl_none(fd, request) }
    }

    @inline(__always)
    static func value(_ fd: Int32, _ request: UInt, _ value: UInt, _ name: StaticString) throws(KVMError) -> Int32 {
        try retrying(name) { ckvm_ioctl_value(fd, request, value) }
    }

    /// Passes `&argument` to the kernel; the kernel may fill it in.
    @inline(__always)
    static func pointer<T>(_ fd: Int32, _ request: UInt, _ argument: inout T, _ name: StaticString) throws(KVMError) -> Int32 {
        try retrying(name) {
            // SAFETY: `argument` is a live, exclusively accessed value of the C struct type the request encodes.
            withUnsafeMutablePointer(to: &argument) { ckvm_ioctl_pointer(fd, request, $0) }
        }
    }

    @inline(__always)
    private static func retrying(_ name: StaticString, _ call: () -> Int32) throws(KVMError) -> Int32 {
        while true {
            let result = call()
            if result >= 0 { return result }
            let error = Errno(rawValue: errno)
            if error == .interrupted { continue }
            throw .ioctlFailed(name: String(describing: name), errno: error)
        }
    }
}
