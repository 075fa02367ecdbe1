import Testing
@testable import Swiftlet
#if canImport(Glibc)
import Glibc
#endif

/// `StartupPages`: which mappings it gives back (only the executable's read-only ones with no page of their own),
/// and that giving them back leaves the process working.
struct StartupPagesTests {
    /// The shape of /proc/self/smaps for a static binary (entry point in its r-xp mapping), with the fields the
    /// parser reads and some it skips.
    static let smaps = """
        00200000-005e5000 r--p 00000000 fe:00 5334847                            /opt/swiftlet/bin/swiftlet
        Size:               3988 kB
        Rss:                 384 kB
        Anonymous:             0 kB
        VmFlags: rd mr mw me sd
        005e5000-0146f000 r-xp 003e4000 fe:00 5334847                            /opt/swiftlet/bin/swiftlet
        Size:              14888 kB
        Anonymous:             0 kB
        0146f000-01506000 r--p 0126d000 fe:00 5334847                            /opt/swiftlet/bin/swiftlet
        Size:                604 kB
        Anonymous:            12 kB
        01506000-01796000 rw-p 01303000 fe:00 5334847                            /opt/swiftlet/bin/swiftlet
        Anonymous:            52 kB
        01796000-01863000 rw-p 00000000 00:00 0
        Anonymous:           188 kB
        7f0000000000-7f0000100000 r--p 00000000 fe:00 777                        /usr/lib/locale/C.utf8/LC_CTYPE
        Anonymous:             0 kB
        7f0000200000-7f0000300000 r-xp 00000000 fe:00 5334848                    /opt/swiftlet/bin/other program
        Anonymous:             0 kB
        7ffc72809000-7ffc7282a000 rw-p 00000000 00:00 0                          [stack]
        Anonymous:            64 kB
        """

    @Test("only the executable's read-only mappings without copied pages are released")
    func picksTheExecutablesCleanReadOnlyMappings() {
        let picked = StartupPages.releasable(smaps: Self.smaps, entryPoint: 0x5e5800)
        #expect(picked.map(\.start) == [0x200000, 0x5e5000])
        #expect(picked.map(\.end) == [0x5e5000, 0x146f000])
        // The RELRO segment (relocated at start: 12 kB of its own pages), .data, .bss, other files and the stack
        // are not picked.
    }

    @Test("an entry point outside every file mapping, or a mapping without its Anonymous line, releases nothing of it")
    func unknownOrIncompleteMappingsAreKept() {
        #expect(StartupPages.releasable(smaps: Self.smaps, entryPoint: 0x1796100).isEmpty)   // in .bss (anonymous)
        #expect(StartupPages.releasable(smaps: Self.smaps, entryPoint: 0x100).isEmpty)       // mapped nowhere
        let withoutAnonymous = Self.smaps.replacing("Anonymous:             0 kB\n0146f000", with: "0146f000")
        let picked = StartupPages.releasable(smaps: withoutAnonymous, entryPoint: 0x5e5800)
        #expect(picked.map(\.start) == [0x200000])
        #expect(StartupPages.releasable(smaps: "garbage\n-\nzz-yy r-xp\n", entryPoint: 0x5e5800).isEmpty)
    }

    @Test("a traced process (a debugger's breakpoints live in copied pages) releases nothing")
    func tracedProcessIsLeftAlone() {
        #expect(!StartupPages.traced(status: "Name:\tswiftlet\nTracerPid:\t0\nUid:\t0\n"))
        #expect(StartupPages.traced(status: "Name:\tswiftlet\nTracerPid:\t4242\n"))
        #expect(StartupPages.traced(status: "Name:\tswiftlet\n"))   // unreadable: assume traced
    }

    /// This test process's own executable code: resident before, mostly not right after, and every following
    /// test still runs (the pages come back from the page cache as they are used).
    @Test("releasing this process's executable pages shrinks its resident code, and the process goes on")
    func releasesThisProcess() throws {
        let pages = try #require(StartupPages())
        let before = Self.residentExecutableCodeKiB()
        let released = pages.release()
        let after = Self.residentExecutableCodeKiB()
        #expect(released > 0)
        #expect(after < before, "resident code \(before) KiB before, \(after) KiB after")
        // The released code runs again.
        #expect(StartupPages.releasable(smaps: Self.smaps, entryPoint: 0x5e5800).count == 2)
    }

    /// Rss of this process's code mapping (the one holding the entry point), from /proc/self/smaps.
    static func residentExecutableCodeKiB() -> Int {
        guard let text = ProcFile.read("/proc/self/smaps", maximum: 4 << 20) else { return 0 }
        let entry = StartupPages.entryPoint
        let code = StartupPages.mappings(smaps: text).first { $0.start <= entry && entry < $0.end }
        return code?.residentKiB ?? 0
    }
}
