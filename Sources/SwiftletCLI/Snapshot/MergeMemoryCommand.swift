import ArgumentParser
import GuestMemory

/// `swiftlet merge-memory DIFF BASE`: writes the pages a `Diff` snapshot's memory file holds onto the memory file of
/// the snapshot before it, so that BASE becomes the memory of the Diff snapshot (Firecracker's `snapshot-editor
/// edit-memory rebase --memory-path BASE --diff-path DIFF`). Restore the Diff's state file with BASE afterwards.
struct MergeMemoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge-memory",
        abstract: "Merge a Diff snapshot's memory file onto the memory file it follows.",
        discussion: """
            DIFF is the memory file of a Diff snapshot (PUT /snapshot/create with snapshot_type Diff): only the \
            pages written since the previous snapshot, holes elsewhere. BASE, the previous snapshot's memory file, is \
            changed in place; merge into a copy when running restores map BASE (they would see pages change). Both \
            files must be of the same size. Then restore the Diff's state file with BASE as its memory file.
            """
    )

    @Argument(help: ArgumentHelp("The Diff snapshot's memory file.", valueName: "diff"))
    var diff: String

    @Argument(help: ArgumentHelp("The previous snapshot's memory file, written in place.", valueName: "base"))
    var base: String

    func run() throws {
        do {
            let copied = try GuestMemory.mergeDiff(from: diff, onto: base)
            print("merge-memory: \(copied) bytes of \(diff) written onto \(base)")
        } catch {
            printError("swiftlet merge-memory: \(error)")
            throw ExitCode.failure
        }
    }
}
