import ArgumentParser

/// `erp-sync`: copies POS transactions from ERP databases into the audit database.
@main
struct ErpSync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erp-sync",
        abstract: "Copy point-of-sale transactions from ERP databases into an audit database.",
        discussion: "Exit codes: 0 success; 1 a run failed; 2 a run was partial (some batches loaded, the checkpoint stays at "
            + "the last one); 3 reconcile found buckets that differ; 64 bad command line; 69 a database could not be reached; 73 init would overwrite a file; "
            + "75 the source is being synced by another process (try again later); 78 bad configuration.",
        version: "0.1.0",
        subcommands: [SyncCommand.self, TestConnectionCommand.self, StatusCommand.self, HistoryCommand.self,
                      ErrorsCommand.self, ReprocessCommand.self, ReconcileCommand.self, DatabasesCommand.self, SQLCommand.self, ServeCommand.self, HashTokenCommand.self,
                      InitCommand.self, DemoCommand.self]
    )
}
