// Name syntax shared by the rules file and the config file, so a name the
// config accepts is always one the rules can refer to.

/** Linux interface names: up to 15 characters, no '/', ',' or whitespace. */
export const IFNAME = /^[A-Za-z0-9_.@-]{1,15}$/;
export const ZONE = /^[a-z0-9_-]+$/;
