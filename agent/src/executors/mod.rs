//! The built-in executors (`tepui executor command|default`): ordinary
//! executor-API clients that run inside the executor container and launch
//! their tasks as nested containers through the agent's operator API.
