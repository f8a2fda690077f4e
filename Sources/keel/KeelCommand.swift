import ArgumentParser
import KeelSystem

/// The `keel` command line. It never links the VM internals: `keel run` replaces itself with
/// `keel-worker run` (the per-VM worker process), which owns the console and exit status.
@main
struct Keel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keel",
        abstract: "Keel: a Hyper-V-style virtualization stack on Linux KVM.",
        discussion: "`keel run` boots one VM in the foreground. The other commands manage VMs through keeld, "
            + "Keel's management service (its REST API on a Unix socket).",
        subcommands: [Run.self, Create.self, Start.self, Stop.self, List.self, Console.self, Pause.self, Resume.self,
                      Remove.self, Kill.self, Events.self])

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Boot a VM in the foreground with its serial console on stdin/stdout.",
            discussion: "Options: --kernel PATH [--initrd PATH] [--cmdline STR] [--memory MIB] [--cpus N] "
                + "[--disk PATH[,readonly]]... [--shutdown-timeout SECONDS] [--rtc-offset SECONDS]. "
                + "Run `keel-worker run --help` for details and exit statuses.")

        @Argument(parsing: .allUnrecognized, help: "Options passed to keel-worker run.")
        var options: [String] = []

        func run() throws {
            let own = ProcessImage.currentExecutable
            let directory = own.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            let worker = directory + "/keel-worker"
            let error = ProcessImage.replace(with: worker, arguments: ["run"] + options)
            Terminal.writeError("keel: error: cannot start \(worker): \(error)\n")
            throw ExitCode(1)
        }
    }
}
