import ArgumentParser
import Foundation
import SVirt
import SVirtConsole
import SVirtLinux

/// `svirt serve`: the web console and JSON API for this host.
struct ConsoleServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the web console and the JSON API (/api/v1) for this host's VMs.",
        discussion: """
            Listens on 127.0.0.1:8080 unless --listen names another address. The token is made on first start (32 \
            random bytes, hex) and kept with mode 0600 in <state-dir>/console.token (--token-file overrides). Every \
            API call needs it (Authorization: Bearer TOKEN), on loopback too. The pages change state only for a \
            browser signed in at /login with the token, through same-origin forms carrying a CSRF token; on \
            loopback they can be read without signing in (domain XML then without its passwords), elsewhere not. \
            A connection is closed when a request's line and header fields take longer than --header-timeout to \
            arrive, and when it stays idle for --idle-timeout. The console uses the same state directory and \
            registry as every other svirt command.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The address and port to listen on (port 0: any free port).", valueName: "ADDR:PORT"))
    var listen: String = ListenAddress.default.description

    @Option(help: ArgumentHelp("The file holding the bearer token (default: <state-dir>/console.token), made with mode 0600 when missing.", valueName: "FILE"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("Seconds a shutdown from the console waits before it destroys the guest.", valueName: "SECONDS"))
    var shutdownTimeout: Int = 60

    @Option(help: ArgumentHelp("Seconds a connection may stay idle (between requests, or stalled in a body) before it is closed.",
                               valueName: "SECONDS"))
    var idleTimeout: Int = 60

    @Option(help: ArgumentHelp("Seconds a client may take to send a request's line and header fields before it gets 408 and is disconnected.",
                               valueName: "SECONDS"))
    var headerTimeout: Int = 10

    @Flag(name: .customLong("stand-in"), help: .hidden)
    var standIn = false

    func validate() throws {
        do { _ = try ListenAddress(parsing: listen) } catch let e as SVirtError { throw ValidationError(e.message) }
        if shutdownTimeout < 0 { throw ValidationError("--shutdown-timeout must not be negative") }
        for (option, value) in [("--idle-timeout", idleTimeout), ("--header-timeout", headerTimeout)] where !(1...86_400).contains(value) {
            throw ValidationError("\(option) \(value) is not a number of seconds from 1 to 86400")
        }
        try global.validateRegistry()
    }

    func run() async throws {
        let address = try ListenAddress(parsing: listen)
        let env = try HostEnvironment(stateDirectory: global.stateDir, selinuxRoot: global.selinuxRoot)
        try env.state.create()
        let tokenPath = tokenFile ?? ConsoleToken.defaultPath(stateDirectory: env.state.path)
        let token: (token: String, created: Bool)
        do { token = try ConsoleToken.loadOrCreate(path: tokenPath) } catch let e as SVirtError {
            printError("error: \(e.message)")
            throw ExitCode.failure
        }
        let openRegistry = global.registryOpener(env)
        var options = DomainLifecycle.StartOptions()
        options.standIn = standIn
        let backend = ConsoleBackend(environment: env, open: {
            let opened = try await openRegistry()
            do {
                return ConsoleSession(lifecycle: try makeLifecycle(env, opened), close: { await opened.close() })
            } catch {
                await opened.close()
                throw error
            }
        }, startOptions: options, shutdownTimeout: .seconds(shutdownTimeout))
        let server = ConsoleServer(listen: address, token: token.token, backend: backend,
                                   idleTimeout: .seconds(idleTimeout), headerTimeout: .seconds(headerTimeout))
        do {
            try await serve(server, tokenPath: tokenPath, created: token.created)
        } catch let e as SVirtError {
            printError("error: \(e.message)")
            throw ExitCode.failure
        }
    }

    func serve(_ server: ConsoleServer, tokenPath: String, created: Bool) async throws {
        try await server.run { bound in
            // Unbuffered: a script (or a test) waits for this line to learn the port.
            let shown = bound.host == "0.0.0.0" || bound.host == "::" ? "HOST:\(bound.port)" : bound.description
            let scope = bound.isLoopback ? "loopback only" : "the token is required for every request"
            let lines = "svirt console listening on http://\(shown)/ (\(scope))\ntoken file: \(tokenPath)\(created ? " (new)" : "")\n"
            FileHandle.standardOutput.write(Data(lines.utf8))
        }
    }
}
