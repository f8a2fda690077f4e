/// What a client asks keeld to do with a VM.
public enum VMAction: String, Sendable, CaseIterable {
    case start, stop, forceStop = "stop --force", kill, pause, resume, delete, console
}

/// Why keeld stopped a worker, kept so the worker's exit can be told apart from a crash.
public enum StopRequest: String, Codable, Sendable {
    /// SIGTERM: ask the guest through the shutdown service, force after the timeout.
    case graceful
    /// SIGINT: turn off at once (vCPUs joined, the worker exits 130).
    case turnOff
    /// SIGKILL: the worker is killed.
    case kill
}

/// How a worker process ended.
public enum WorkerExit: Sendable, Equatable {
    case exited(Int32)
    case signalled(Int32)
    /// Gone, status unknown (it ended while keeld was not its parent and left no exit record).
    case vanished
}

/// The VM state machine: which actions each state allows, and where a worker's exit leads.
public enum Lifecycle {
    /// Whether `action` is allowed in `state`; the error names the state.
    public static func check(_ action: VMAction, in state: VMState, name: String) throws(APIError) {
        let allowed: Bool
        switch action {
        case .start: allowed = state == .stopped || state == .crashed
        case .stop, .forceStop: allowed = state == .running || state == .paused || state == .stopping || state == .starting
        case .kill: allowed = state.hasWorker
        case .pause: allowed = state == .running
        case .resume: allowed = state == .paused
        case .delete: allowed = state == .stopped || state == .crashed || state == .corrupt
        case .console: allowed = state == .running || state == .paused || state == .stopping
        }
        guard allowed else {
            let hint: String
            switch (action, state) {
            case (.delete, _): hint = "; stop it first (keel stop \(name))"
            case (.start, .running), (.start, .paused): hint = "; it is already running"
            case (_, .corrupt): hint = "; its files are unreadable: fix them or delete the VM"
            default: hint = ""
            }
            throw APIError(.invalidState, "VM '\(name)' is \(state.rawValue): cannot \(action.rawValue)\(hint)")
        }
    }

    /// The state a VM enters when its worker ends, and the reason in words. `requested` is the
    /// stop keeld asked for, if any.
    public static func afterExit(_ exit: WorkerExit, requested: StopRequest?) -> (state: VMState, reason: String) {
        switch exit {
        case .exited(0): return (.stopped, "guest powered off")
        case .exited(3): return (.stopped, "guest reset (reboot); the VM was stopped")
        case .exited(4): return (.crashed, "guest crashed (triple fault, KVM internal error or kernel panic)")
        case .exited(130): return (.stopped, "turned off")
        case .exited(143):
            return (.stopped, requested == .graceful ? "turned off: the guest did not shut down in time (or has no shutdown service)"
                                                      : "turned off (SIGTERM)")
        case .exited(2): return (.crashed, "worker rejected the configuration (exit status 2)")
        case .exited(1): return (.crashed, "host error in the worker (exit status 1)")
        case .exited(let status): return (.crashed, "worker exited with status \(status)")
        case .signalled(let signal):
            if requested == .kill { return (.stopped, "killed (signal \(signal)) on request") }
            return (.crashed, "worker killed by signal \(signal)")
        case .vanished:
            if requested == .kill { return (.stopped, "killed on request") }
            return (.crashed, "worker ended while keeld was not watching and left no exit record")
        }
    }
}
