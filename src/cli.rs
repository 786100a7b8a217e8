//! The command line: `serve`, `migrate`, `create-superuser`, `export-schema`.
use std::{io::IsTerminal, net::SocketAddr, process::ExitCode};

use clap::{Args, Parser, Subcommand, error::ErrorKind};

use crate::{
    config::{Config, DEFAULT_BIND, DatabaseArgs, Settings, parse_bind},
    domain::{Email, PasswordPolicy, Username, password::PersonalInfo},
    services::{self, users::NewUser},
    startup,
};

#[derive(Parser, Debug)]
#[command(
    name = "roster",
    version,
    about = "A GraphQL server for users, groups and divisions."
)]
pub struct Cli {
    /// Log filter, e.g. `info` or `info,roster::http=debug`.
    #[arg(
        long,
        env = "ROSTER_LOG",
        default_value = "info",
        global = true,
        value_name = "FILTER"
    )]
    pub log: String,
    /// Log lines as `text` or `json` (one object per line).
    #[arg(
        long,
        env = "ROSTER_LOG_FORMAT",
        default_value = "text",
        global = true,
        value_name = "FORMAT"
    )]
    pub log_format: crate::telemetry::LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Migrate the database, then serve GraphQL, GraphiQL and health checks.
    // Boxed: the settings make it ten times the size of the others.
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations.
    Migrate(DatabaseArgs),
    /// Create a superuser. The password comes from ROSTER_SUPERUSER_PASSWORD,
    /// else it is asked for without echo.
    CreateSuperuser(CreateSuperuserArgs),
    /// Print the GraphQL schema (SDL).
    ExportSchema,
    /// Fill an empty database with demo divisions, groups and users (all
    /// with the password `roster-demo-password`; `admin` is a superuser).
    DemoData(DemoDataArgs),
}

#[derive(Args, Debug)]
pub struct DemoDataArgs {
    /// How many users to create.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub users: u64,
    /// Seed of the generator: the same seed gives the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ROSTER_BIND", default_value = DEFAULT_BIND, value_parser = parse_bind, value_name = "ADDR")]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Args, Debug)]
pub struct CreateSuperuserArgs {
    #[arg(long)]
    pub username: String,
    #[arg(long)]
    pub email: String,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Shortest password accepted.
    #[arg(long, env = "ROSTER_PASSWORD_MIN_LENGTH", default_value_t = crate::config::DEFAULT_PASSWORD_MIN_LENGTH, value_name = "N")]
    pub password_min_length: usize,
}

/// Parses the command line and runs the command. Every failure is one line
/// on standard error and a non-zero exit.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            let _ = error.print();
            return if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
        Err(error) => {
            // clap's first line names the problem; the usage block after it
            // is noise for a configuration error.
            let rendered = error.render().to_string();
            let line = rendered
                .lines()
                .next()
                .unwrap_or("error: invalid arguments");
            match env_of_invalid_arg(&error) {
                Some(env) => eprintln!("{line} (flag or {env})"),
                None => eprintln!("{line}"),
            }
            return ExitCode::from(2);
        }
    };
    if let Err(message) = crate::telemetry::init(&cli.log, cli.log_format) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", format!("{error:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// The environment variable behind the flag a clap error is about, so the
/// message names the setting however it was given.
fn env_of_invalid_arg(error: &clap::Error) -> Option<String> {
    use clap::{
        CommandFactory,
        error::{ContextKind, ContextValue},
    };
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    let command = Cli::command();
    std::iter::once(&command)
        .chain(command.get_subcommands())
        .flat_map(|c| c.get_arguments())
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
        .map(|env| env.to_string_lossy().into_owned())
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let args = *args;
            let config = Config::new(args.database, args.settings).map_err(anyhow::Error::msg)?;
            startup::serve(config, args.bind).await
        }
        Command::Migrate(database) => {
            let db = startup::connect(&database.database_url).await?;
            startup::migrate(&db).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::CreateSuperuser(args) => create_superuser(args).await,
        Command::DemoData(args) => {
            let db = startup::connect(&args.database.database_url).await?;
            startup::migrate(&db).await?;
            let made = services::demo_data::generate(&db, args.users, args.seed).await?;
            println!(
                "Created {} divisions, {} groups, {} users and {} memberships in {:.1} s. Every demo user's password is \"{}\"; \"{}\" is a superuser.",
                made.divisions,
                made.groups,
                made.users,
                made.memberships,
                made.seconds,
                services::demo_data::DEMO_PASSWORD,
                services::demo_data::DEMO_ADMIN
            );
            Ok(())
        }
        Command::ExportSchema => {
            print!("{}", crate::graphql::sdl());
            Ok(())
        }
    }
}

fn superuser_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("ROSTER_SUPERUSER_PASSWORD") {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "no password: set ROSTER_SUPERUSER_PASSWORD or run in a terminal to be asked"
        );
    }
    let password = rpassword::prompt_password("Password: ")?;
    let again = rpassword::prompt_password("Password (again): ")?;
    if password != again {
        anyhow::bail!("the two passwords differ");
    }
    Ok(password)
}

async fn create_superuser(args: CreateSuperuserArgs) -> anyhow::Result<()> {
    let username = Username::parse(&args.username)
        .map_err(|problems| anyhow::anyhow!("username: {}", problems.join(" ")))?;
    let email = Email::parse(&args.email)
        .map_err(|problems| anyhow::anyhow!("email: {}", problems.join(" ")))?;
    let password = superuser_password()?;
    let info = PersonalInfo {
        username: username.as_str(),
        email: email.as_str(),
        ..PersonalInfo::default()
    };
    let problems = PasswordPolicy::new(args.password_min_length).check(&password, info);
    if !problems.is_empty() {
        anyhow::bail!("password: {}", problems.join(" "));
    }
    let db = startup::connect(&args.database.database_url).await?;
    startup::migrate(&db).await?;
    let password_hash =
        services::password_hash::Hasher::new(services::password_hash::HashLimits::one_at_a_time())
            .hash(password)
            .await?;
    let new = NewUser {
        username,
        email,
        first_name: String::new(),
        last_name: String::new(),
        phone_number: None,
        password_hash: Some(password_hash),
        is_active: true,
        is_staff: true,
        is_superuser: true,
        division_id: None,
    };
    let user = services::events::create_user(&db, new, |_| services::events::Actor::command_line())
        .await
        .map_err(|error| match error {
            crate::Error::Conflict(fields) => anyhow::anyhow!(
                "{}",
                fields
                    .iter()
                    .flat_map(|(_, m)| m.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            other => anyhow::anyhow!("{other}"),
        })?;
    println!("Superuser \"{}\" created (id {}).", user.username, user.id);
    Ok(())
}
