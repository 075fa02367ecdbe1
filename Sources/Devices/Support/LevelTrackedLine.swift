/// A device's interrupt output: remembers the level it last drove so the device calls `InterruptLine.setLevel`
/// only on changes (each call is a KVM_IRQ_LINE ioctl), and can give an edge-triggered input a fresh edge.
/// It lives inside the owning device's lock, which therefore orders every level change.
struct LevelTrackedLine: Sendable {
    let line: any InterruptLine
    private(set) var level = false

    init(_ line: any InterruptLine) { self.line = line }

    /// Drives the line to `asserted` if it is not there already.
    mutating func drive(_ asserted: Bool) {
        guard asserted != level else { return }
        level = asserted
        line.setLevel(asserted)
    }

    /// Drives the line unconditionally: after a snapshot restore, the level of the real line is not known.
    mutating func force(_ asserted: Bool) {
        level = asserted
        line.setLevel(asserted)
    }

    /// Drops and re-raises an asserted line, for a new interrupt condition that replaces the one just serviced
    /// while the output stays high (an edge-triggered ISA input would otherwise never see it).
    mutating func retrigger() {
        guard level else { return }
        line.setLevel(false)
        line.setLevel(true)
    }
}
