import Foundation
import Testing
@testable import Swiftlet

/// Real KVM exits with tiny guests. These run directly on /dev/kvm (on this project's nested-PVM machines
/// too: the guests are a handful of instructions). Serialized: each builds a VM, and the machines here have
/// two cores.
@Suite(.serialized, .enabled(if: FileManager.default.isReadableFile(atPath: "/dev/kvm"), "needs /dev/kvm"))
struct GuestExitTests {
    @Test("bytes written to COM1's THR reach the console; HLT ends the VM with status 3")
    func serialOutputAndHalt() throws {
        let guest = try TinyGuest(Snippet.print("OK\n") + "hlt")
        let (reason, output) = try guest.run()
        #expect(output == "OK\n")
        guard case let .halted(vcpu, rip) = reason else { Issue.record("expected a halt, got \(reason)"); return }
        #expect(vcpu == 0)
        #expect(rip > RawImagePayload.loadAddress)
        #expect(reason.exitCode == 3)
    }

    @Test("a read from an unclaimed port returns all ones; writes there are dropped")
    func unclaimedPorts() throws {
        let guest = try TinyGuest("""
            mov $0x99, %dx
            out %al, (%dx)          # dropped
            in (%dx), %al           # 0xff
            cmp $0xff, %al
            jne 1f
            in (%dx), %ax           # 0xffff
            cmp $0xffff, %ax
            jne 1f
            \(Snippet.print("Y"))
            hlt
            1:
            \(Snippet.print("N"))
            hlt
            """)
        let (reason, output) = try guest.run()
        #expect(output == "Y")
        #expect(reason.exitCode == 3)
    }

    @Test("the guest reads typed input from COM1's RBR after seeing LSR.DR")
    func serialInput() throws {
        // Echo each received byte until a newline, polling the line status register.
        let guest = try TinyGuest("""
            2:
            mov $0x3fd, %dx
            in (%dx), %al
            test $1, %al            # LSR.DR: a byte is waiting
            jz 2b
            mov $0x3f8, %dx
            in (%dx), %al           # RBR
            out %al, (%dx)          # THR
            cmp $10, %al
            jne 2b
            hlt
            """)
        let (reason, output) = try guest.run(input: Array("hello, guest\n".utf8))
        #expect(output == "hello, guest\n")
        #expect(reason.exitCode == 3)
    }

    @Test("command 0xFE on the i8042 resets the CPU, which ends the VM cleanly")
    func i8042Reset() throws {
        let guest = try TinyGuest("""
            mov $0xfe, %al
            out %al, $0x64
            \(Snippet.print("not reached"))
            hlt
            """)
        let (reason, output) = try guest.run()
        #expect(reason == .reset)
        #expect(reason.exitCode == 0)
        #expect(output == "")
    }

    @Test("a triple fault is reported as such, with status 4")
    func tripleFault() throws {
        // The boot IDT is empty (limit 0): the #UD cannot be delivered, nor the #GP and #DF that follow.
        // (Long mode: on nested-PVM hosts an undeliverable exception in real mode spins instead.)
        let guest = try TinyGuest("ud2", mode: .longMode)
        let (reason, _) = try guest.run(mode: .longMode)
        guard case let .tripleFault(_, rip) = reason else { Issue.record("expected a triple fault, got \(reason)"); return }
        #expect(rip == RawImagePayload.loadAddress)
        #expect(reason.exitCode == 4)
    }

    @Test("a guest that never stops is ended by the time limit")
    func timeout() throws {
        let guest = try TinyGuest("1: jmp 1b")
        let (reason, _) = try guest.run(timeout: 0.5)
        #expect(reason == .timedOut)
        #expect(reason.exitCode == 124)
    }

    @Test("64-bit guest: an MMIO store and load to an unclaimed address (store dropped, load all ones)")
    func unclaimedMMIO() throws {
        let guest = try TinyGuest("""
            movabs $0xd0000000, %rbx
            movl $0x12345678, (%rbx)
            movl (%rbx), %eax
            cmp $0xffffffff, %eax
            jne 1f
            \(Snippet.print("Y"))
            hlt
            1:
            \(Snippet.print("N"))
            hlt
            """, mode: .longMode)
        let (reason, output) = try guest.run(mode: .longMode)
        #expect(output == "Y")
        #expect(reason.exitCode == 3)
    }

    @Test("user-mode (CPL 3) guest: port I/O exits work from ring 3")
    func userModePortIO() throws {
        // In user mode HLT is privileged (#GP → no IDT → triple fault), so this guest ends through the i8042.
        let guest = try TinyGuest("""
            mov $1000, %ecx
            1:
            out %al, $0x99
            dec %ecx
            jnz 1b
            \(Snippet.print("U"))
            mov $0xfe, %al
            out %al, $0x64
            """, mode: .userMode)
        let (reason, output) = try guest.run(mode: .userMode)
        #expect(output == "U")
        #expect(reason == .reset)
    }
}
